"""The media pipeline: renditions, metadata and quality features of uploaded originals."""
