"""Ships the board files, the driver header and the firmware shim inside the package.

They live at the top of the source tree (boards/, drivers/include/, firmware/),
where users and the layout expect them; an installed hwsim finds its copies in
hwsim/_data/ (see hwsim/_paths.py).  Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = {"boards": ("boards", "*.toml"), "include": ("drivers/include", "*.h"),
        "firmware": ("firmware", "*.[cl]*")}


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        for name, (source, pattern) in DATA.items():
            target = Path(self.build_lib) / "hwsim" / "_data" / name
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted((ROOT / source).glob(pattern)):
                if path.is_file():
                    shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithData})
