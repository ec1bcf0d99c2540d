"""A trained generator applied to images: loading a translator, any size in and out, tiles, export, and
onnxruntime as a backend.

    from inference import load_translator
    translate = load_translator("checkpoints/demo_cycle_gan")        # architecture from train_opt.json
    translate(Image.open("in.png")).save("out.png")                    # same size out as in
"""

from .translator import Translator, load_translator

__all__ = ["Translator", "load_translator"]
