"""Fine-tuning: the SoVITS GAN trainer and the GPT (text-to-semantic) trainer, run as resumable subprocesses.

``python -m GPT_SoVITS.train.sovits --config <exp>/sovits_train.yaml`` and
``python -m GPT_SoVITS.train.gpt --config <exp>/gpt_train.yaml``; under ``torchrun`` for several GPUs or machines.
"""
