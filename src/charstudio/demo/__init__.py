"""The main job: charstudio's pipeline end to end on bundled public-domain photos.

It grows as the pipeline grows; each step is a plain service call a user could make.
"""

from charstudio.demo.recipe import DemoReport, DemoStep, run_demo, sample_images

__all__ = ["DemoReport", "DemoStep", "run_demo", "sample_images"]
