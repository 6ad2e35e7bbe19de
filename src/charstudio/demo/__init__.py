"""The main job: charstudio's pipeline end to end on bundled public-domain photos.

It grows as the pipeline grows; each step is a plain service call a user could make.
"""

from charstudio.demo.recipe import DEMO_CHECKPOINT, DemoReport, DemoStep, run_demo, sample_images

__all__ = ["DEMO_CHECKPOINT", "DemoReport", "DemoStep", "run_demo", "sample_images"]
