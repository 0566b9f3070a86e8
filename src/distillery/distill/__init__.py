"""Knowledge-distillation losses and the teacher's logits they read (stages ``label`` and
``distill``)."""
