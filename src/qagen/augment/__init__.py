"""Augment: measure tempo, beats/downbeats/meter, key, chords and loudness on each clip.

One analyser per module (``estimate_*`` functions, pure: audio in, typed result out);
``extract.py`` combines them per clip and ``stage.py`` runs them over the manifest.
"""
