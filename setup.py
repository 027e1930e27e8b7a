"""keras-asr: audio-sheet music retrieval in Keras 3. Metadata lives in setup.cfg."""

from setuptools import setup

setup()
