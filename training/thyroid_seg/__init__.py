"""Training, export, quantization and evaluation of the thyroid-nodule segmentation model."""
