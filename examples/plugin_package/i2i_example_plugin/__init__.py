"""An example i2i plugin: importing this package registers one generator, one dataset mode and one model.

i2i imports it through the entry point declared in pyproject.toml (group `i2i.plugins`), or when given as
`--plugin i2i_example_plugin`. The network comes first because the model's option defaults name it.
"""

from . import denoise_model, noisy_dataset, tiny_generator  # noqa: F401  (each registers on import)
