"""The shrink pipeline: teacher checkpoints, fine-tuning, distillation, int8 export and fidelity.

Importing this package is light; torch is imported by the modules that need it.
"""
