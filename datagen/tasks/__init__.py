"""The 12 source tasks of Table 1 (docs/experiments.md §2.2), in table order. Configs: configs/datagen_task/<name>.yaml."""
from datagen.tasks.segmentation import Cub200MultiTask, Cub200UNet, MontgomeryUNet
from datagen.tasks.siamese import OmniglotSiamese
from datagen.tasks.text import ImdbLSTM, MitMovieNER, ShakespeareGRU
from datagen.tasks.vision import (Food101Classification, Food101Inception, SvhnAdversarial, SvhnClassification,
                                  SvhnEcc)

TABLE1 = (SvhnClassification, SvhnEcc, SvhnAdversarial, Food101Classification, Food101Inception, Cub200MultiTask,
          ImdbLSTM, MitMovieNER, OmniglotSiamese, ShakespeareGRU, MontgomeryUNet, Cub200UNet)
