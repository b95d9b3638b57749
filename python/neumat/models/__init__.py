"""Neural material models in torch (no device, no renderer): fields, QAT wrappers, export to INT8."""
