"""Atmospheric chemistry: NequIP on OH + VOC -- placeholder until its issue.

Registry name "nequip" -> atmospheric.model:NequIPAdapter; transition path sampling uses
common.md stop conditions; products are identified with common.events.
"""
