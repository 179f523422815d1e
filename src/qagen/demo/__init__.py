"""The embedded default data: a demo corpus synthesised with known tempo, meter, key, chords."""
