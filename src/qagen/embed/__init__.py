"""The embed stage: MERT audio embeddings per clip (``qagen.embed.stage.embed``).

Modules: ``config`` (EmbedConfig), ``tiny`` (the built-in random-initialised encoder),
``encoder`` (resolve and load MERT checkpoints with transformers' HubertModel), ``pooling``
(windows and time pooling), ``store`` (shard arrays, index, the ``EmbeddingStore`` reader),
``stage`` (the stage function). Heavy imports (torch, transformers) happen inside them.
"""
