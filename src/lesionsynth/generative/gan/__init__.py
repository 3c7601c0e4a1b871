"""The GAN generator family: a lesion-mask GAN, label -> image translators, and a database builder."""
