"""RTCoInfer training: the SW-CNN in PyTorch, its training recipe, and the model file exporter.

See training/README.md for the commands and docs/model-format.md for the model file contract.
"""
