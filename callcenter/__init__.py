"""The callcenter process: configuration, app assembly, the CLI and the 96166 hotline."""
