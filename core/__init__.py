"""Shared core of the ARC reproduction: tasks, the training loop, LR schedules, logs and artifacts.

Every stage (datagen, arc_model, selection, experiments, figures) imports from here instead of
re-implementing training. See README.md for the layout.
"""
