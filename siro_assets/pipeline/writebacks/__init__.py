"""Delivery of extracted values to CRMs (the `siro_writebacks` group): the `siro/crm_writebacks`
asset, its check and `CrmWritebackResource`; the sinks and the ledger live in `siro_assets.crm`.
"""
