"""The training layer: the LightningModule, the data module, the Trainer set-up and the Hydra entry points."""
