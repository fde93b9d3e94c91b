"""Packaging: everything is in pyproject.toml except the one mapping it
cannot express: the top-level `presets/` folder ships inside the wheel as the
package data of `mmzoo._presets`, so `from_preset("<name>")` works from a
non-editable install. The recorded AV-digits clip digests ship beside it."""

from setuptools import find_packages
from setuptools import setup

setup(
    packages=find_packages(include=["mmzoo", "mmzoo.*"]) + ["mmzoo._presets"],
    package_dir={"mmzoo._presets": "presets"},
    package_data={
        "mmzoo._presets": ["**/*"],
        # The recorded AV-digits clip digests that builds are checked with.
        "mmzoo.datasets": ["av_digits_clips.json"],
    },
    include_package_data=True,
)
