"""qagen: music datasets → grounded MusicQA / instruction-tuning data.

Importing the package is cheap: heavy dependencies (torch, madmom, vLLM, Prefect) load
only inside the code that needs them.
"""

__version__ = "0.1.0"
