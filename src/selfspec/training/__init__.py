"""QLoRA training internals of the ``train`` stage: record formatting (``data``), the 4-bit base
with LoRA (``model``), the Trainer loop (``loop``) and MLflow publishing (``publish``)."""
