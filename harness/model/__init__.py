"""Model stage: inspect .tflite files, make test vectors, compute references."""
