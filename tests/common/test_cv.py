"""common.cv: one CV syntax for metadynamics and TPS."""

import numpy as np
import pytest

from common.cv import cv_values, parse_cv, parse_range
from common.errors import ConfigError


def test_groups_ranges_and_com_distance():
    cv = parse_cv("distance:0-1:2", 3)
    assert cv.groups == ((0, 1), (2,))
    pos = np.array([[0.0, 0, 0], [2.0, 0, 0], [0.0, 3.0, 0]])
    masses = np.array([1.0, 3.0, 2.0])
    # COM of (0, 1) is x = 1.5; distance to (0, 3, 0) is sqrt(1.5^2 + 3^2)
    assert cv_values(cv, pos, masses) == pytest.approx(np.hypot(1.5, 3.0), rel=1e-14)
    frames = np.stack([pos, pos + 1.0])
    assert cv_values(cv, frames, masses) == pytest.approx([np.hypot(1.5, 3.0)] * 2, rel=1e-14)


def test_minimum_image():
    cv = parse_cv("distance:0:1", 2)
    pos = np.array([[0.5, 0, 0], [9.5, 0, 0]])
    assert cv_values(cv, pos, np.ones(2), cell=np.eye(3) * 10.0) == pytest.approx(1.0)


@pytest.mark.parametrize("spec", ["distance:0:5", "distance:0:0", "angle:0:1", "distance:a:1",
                                  "distance:2-1:3", "distance:0"])
def test_bad_specs_are_one_line_config_errors(spec):
    with pytest.raises(ConfigError) as err:
        parse_cv(spec, 5, where="cv")
    assert "\n" not in str(err.value)


def test_range_names_its_unit():
    assert parse_range("1.5,3", "state_a", "A") == (1.5, 3.0)
    with pytest.raises(ConfigError, match="A"):
        parse_range("3,1", "state_a", "A")
