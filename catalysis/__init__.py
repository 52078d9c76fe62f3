"""Catalysis: SchNet (schnetpack) MD of CO2 reduction on Cu(111) and reaction-event analysis.

Rooms: ``model`` (SchNet adapter), ``systems`` (slabs, adsorbates, sampling), ``events``
(pathways, lifetimes), ``barriers`` (CI-NEB), ``case_study`` (the seed workflow), ``cli``.
"""
