"""The API's resources, one module per family of paths; each module's `routes(api)` lists its paths."""
