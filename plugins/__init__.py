"""Built-in model plugins, one module each, installed as ``automl.plugins``.

Each module is registered through the ``automl.plugins`` entry-point group in
``pyproject.toml``, the same door third-party plugins use.
"""
