"""Semiconductors: MACE on wurtzite GaN with point defects -- placeholder until its issue.

Registry name "mace" -> semiconductors.model:MACEAdapter; thermodynamic integration uses
common.md extra force terms (lambda-mixing).
"""
