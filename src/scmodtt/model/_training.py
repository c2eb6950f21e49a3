"""MODTT's training: the autoencoder through scvi-tools, checkpoints, then the flow prior."""

from __future__ import annotations

import os

from ._checkpoints import (
    ResumableCheckpoint,
    TrainingStateCallback,
    checkpoint_split,
    resolve_checkpoint,
)


class TrainingMixin:
    """:meth:`train` of :class:`~scmodtt.MODTT`, ahead of scvi-tools' ``UnsupervisedTrainingMixin``.

    It sets MODTT's schedule (KL warm-up, early stopping on the validation ELBO), resumable
    checkpoints, and the second stage that fits the conditional flow prior.
    """

    def train(
        self,
        max_epochs: int | None = None,
        lr: float = 1e-3,
        batch_size: int = 256,
        train_size: float = 0.9,
        validation_size: float | None = None,
        early_stopping: bool = True,
        early_stopping_patience: int = 20,
        n_epochs_kl_warmup: int | None = 20,
        max_kl_weight: float = 0.2,
        flow_prior: bool = True,
        flow_kwargs: dict | None = None,
        plan_kwargs: dict | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every_n_epochs: int = 1,
        ckpt_path: str | os.PathLike | None = None,
        **trainer_kwargs,
    ):
        """Train the autoencoder (Adam, early stopping on the validation ELBO), then its flow prior.

        The second stage fits the conditional flow prior that :meth:`sample` draws from to the
        training cells' posteriors (:meth:`fit_flow_prior`); it needs no extra step.

        Parameters
        ----------
        max_epochs
            Maximum passes through the data; ``None`` uses scvi-tools' heuristic
            (:func:`scvi.model.get_max_epochs_heuristic`).
        lr
            Adam learning rate.
        batch_size
            Cells per mini-batch.
        train_size, validation_size
            Fractions of cells for training and validation (early stopping).
        early_stopping
            Stop when the validation ELBO has not improved for ``early_stopping_patience`` epochs.
        early_stopping_patience
            Epochs without improvement before stopping.
        n_epochs_kl_warmup
            Epochs over which the KL weight rises linearly from 0 to ``max_kl_weight`` (``None``:
            no warm-up).
        max_kl_weight
            KL weight after warm-up. Below 1 the latent keeps more within-type variation (the flow
            prior, not the KL term, then shapes what :meth:`sample` draws); the validation ELBO
            that early stopping and :meth:`get_elbo` report always weighs the KL term fully.
        flow_prior
            Fit the conditional flow prior after the autoencoder (default of :meth:`sample`).
            A query model (:meth:`load_query_data`) keeps the reference's and skips this.
        flow_kwargs
            Keyword arguments of :meth:`fit_flow_prior` (e.g. ``max_epochs``).
        plan_kwargs
            Keyword arguments of :class:`scvi.train.TrainingPlan`.
        checkpoint_dir
            Folder where Lightning writes ``last.ckpt``, the whole training state, every
            ``checkpoint_every_n_epochs`` epochs (a
            :class:`~lightning.pytorch.callbacks.ModelCheckpoint`): weights, the label prior's
            moment-matched buffers, optimiser, epoch and step counters (hence the KL warm-up),
            early stopping's state, the train/validation/test split, the random number generator
            states and the history so far. ``None``: no checkpoints. (scvi-tools'
            ``enable_checkpointing=True`` instead keeps the best model by validation loss as model
            folders that :meth:`load` reads but that cannot resume training.)
        checkpoint_every_n_epochs
            Epochs between checkpoints in ``checkpoint_dir``.
        ckpt_path
            Resume an interrupted training from this checkpoint: a ``.ckpt`` file, or a
            ``checkpoint_dir`` (``"last"``: this call's ``checkpoint_dir``). The model must be
            built and set up as before on the same data; pass the same arguments (``max_epochs``
            is the total, not the epochs left) and the same ``scvi.settings.seed``. Training then
            continues from the next epoch on the checkpoint's data split and random states and
            ends with the model an uninterrupted run would have trained; the flow prior is fitted
            afterwards as usual.
        **trainer_kwargs
            Passed to :class:`scvi.train.Trainer` and Lightning (e.g. ``accelerator``,
            ``devices``, ``strategy``, ``enable_progress_bar``, ``check_val_every_n_epoch``,
            ``callbacks``). Several processes or GPUs: ``devices`` with
            ``strategy="ddp_find_unused_parameters_true"`` from a script or ``torchrun``,
            ``"ddp_notebook_find_unused_parameters_true"`` in a notebook (``"ddp_spawn"`` cannot
            pickle the MuData registry). As scvi-tools documents, early stopping is then turned
            off (with a warning); the label prior's moments are summed over the processes and
            the flow prior is broadcast from the first, so every process holds the same model.

        Examples
        --------
        >>> model.train(max_epochs=200, checkpoint_dir="modtt_checkpoints")
        >>> # interrupted? In a new session, build the model as before, then:
        >>> scvi.settings.seed = 0  # the seed of the interrupted run
        >>> model = scmodtt.MODTT(mdata, coupling="tt")
        >>> model.train(max_epochs=200, checkpoint_dir="modtt_checkpoints", ckpt_path="last")

        """
        # Another scvi-tools model set up on the same MuData rewrites the shared `_scvi_*`
        # columns (e.g. every label code to 0); re-validating restores this model's registry.
        self._validate_anndata(self.adata)
        if not 0.0 <= max_kl_weight <= 1.0:
            raise ValueError(f"`max_kl_weight` must be between 0 and 1, got {max_kl_weight!r}.")
        plan_kwargs = {
            # A query model's frozen weights stay exactly the reference's only without decay.
            **({"weight_decay": 0.0} if self.is_query_model else {}),
            "lr": lr,
            "optimizer": "Adam",
            "n_epochs_kl_warmup": n_epochs_kl_warmup,
            "max_kl_weight": max_kl_weight,
            **(plan_kwargs or {}),
        }
        if early_stopping:
            trainer_kwargs.setdefault("early_stopping_patience", early_stopping_patience)
            trainer_kwargs.setdefault("early_stopping_monitor", "elbo_validation")
        datasplitter_kwargs = dict(trainer_kwargs.pop("datasplitter_kwargs", None) or {})
        if ckpt_path is not None:
            if os.fspath(ckpt_path) == "last":
                if checkpoint_dir is None:
                    raise ValueError(
                        '`ckpt_path="last"` resumes from `checkpoint_dir`, which is not given; '
                        "pass the folder or the `.ckpt` file of the interrupted training."
                    )
                ckpt_path = checkpoint_dir
            checkpoint = resolve_checkpoint(ckpt_path)
            split = checkpoint_split(checkpoint, self.adata.n_obs)
            if split is not None:  # the interrupted run's cells, whatever the split arguments
                datasplitter_kwargs["external_indexing"] = split
            trainer_kwargs["ckpt_path"] = os.fspath(checkpoint)
        # Random states, data split and history go into every Lightning checkpoint.
        callbacks = [*(trainer_kwargs.pop("callbacks", None) or []), TrainingStateCallback()]
        if checkpoint_dir is not None:
            callbacks.append(ResumableCheckpoint(checkpoint_dir, checkpoint_every_n_epochs))
        # scvi-tools leaves the module in eval mode after training (and after the flow fit);
        # Lightning keeps modes as it finds them, so a second train() would start in eval mode.
        self.module.train()
        result = super().train(
            max_epochs=max_epochs,
            train_size=train_size,
            validation_size=validation_size,
            batch_size=batch_size,
            early_stopping=early_stopping,
            datasplitter_kwargs=datasplitter_kwargs or None,
            plan_kwargs=plan_kwargs,
            callbacks=callbacks,
            **trainer_kwargs,
        )
        if flow_prior and not self.is_query_model:  # a query model keeps the reference's flow
            flow_kwargs = dict(flow_kwargs or {})
            flow_kwargs.setdefault("progress", trainer_kwargs.get("enable_progress_bar"))
            self.fit_flow_prior(**flow_kwargs)
        return result
