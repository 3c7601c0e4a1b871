"""Fitting a run to a time budget: whole epochs, only shorter, at least one epoch."""

from __future__ import annotations

from lesionsynth.train.budget import fit_to_budget


def test_the_epochs_that_fit_what_is_left_of_the_budget():
    # 100 iterations in 100 s (1 s/iteration, 100 s/epoch); 450 s left -> 4 more epochs
    assert fit_to_budget(100, 1000, 100.0, 550.0, 100) == 500


def test_a_run_that_fits_is_not_lengthened_or_changed():
    assert fit_to_budget(100, 300, 100.0, 10_000.0, 100) == 300


def test_a_spent_budget_ends_the_run_at_the_current_epoch_but_never_before_the_first():
    assert fit_to_budget(300, 1000, 900.0, 600.0, 100) == 300
    assert fit_to_budget(100, 1000, 1000.0, 1.0, 100) == 100


def test_no_measurement_no_change():
    assert fit_to_budget(0, 1000, 0.0, 1.0, 100) == 1000
