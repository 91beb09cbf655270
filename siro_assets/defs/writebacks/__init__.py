"""Delivery of extracted values to CRMs (the `siro_writebacks` group); the sinks live in `siro_assets.crm`."""
