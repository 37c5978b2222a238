"""Fine-tuning: the SoVITS GAN trainer, the SoVITS v4 LoRA trainer and the GPT (text-to-semantic) trainer, run as
resumable subprocesses.

``python -m GPT_SoVITS.train.sovits --config <exp>/sovits_train.yaml`` (v1/v2/v2Pro/v2ProPlus),
``python -m GPT_SoVITS.train.sovits_lora --config <exp>/sovits_lora.yaml`` (v4) and
``python -m GPT_SoVITS.train.gpt --config <exp>/gpt_train.yaml``; under ``torchrun`` for several GPUs or machines.
Which SoVITS trainer a version uses is ``VersionSpec.sovits_trainer``.
"""
