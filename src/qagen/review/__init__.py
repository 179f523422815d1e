"""The review stage: a local web page where curators listen to a clip, read its pairs and
accept, reject or edit them; decisions go to ``reviews/`` and the publish stage applies them."""

from qagen.review.server import serve

__all__ = ["serve"]
