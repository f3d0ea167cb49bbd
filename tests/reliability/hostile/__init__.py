"""The hostile input corpus: broken repositories generated from one valid base (see ``corpus.py``)."""
