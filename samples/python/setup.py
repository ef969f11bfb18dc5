"""Generates lstm_demo/model.py from the ONNX model while the package is built: a build_py step
that writes onnx2src's NumPy module next to the package's own modules in the build folder, so
the wheel carries it and the source tree never does. Only the build imports onnx2src (and onnx).
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "simple_lstm.onnx")  # keep your model inside your project


class build_py_with_model(build_py):
    def run(self):
        super().run()
        import onnx2src

        folder = os.path.join(self.build_lib, "lstm_demo")
        self.mkpath(folder)
        for name, text in onnx2src.generate(MODEL, onnx2src.Options("numpy", name="model")).items():
            with open(os.path.join(folder, name), "w", encoding="utf-8", newline="\n") as f:
                f.write(text)


setup(cmdclass={"build_py": build_py_with_model})
