"""Example Python spec: near the class-2 centre, the class-2 score stays in [0, 60]
and class 2 stays the argmax.  Load it with ``verify check MODEL specs/tiny_output_range.py``."""

from verify.spec import argmax_is, linf_ball, make_property, output_between

CENTRE_CLASS_2 = [0.5, 0.8, 0.2, 0.4]

PROPERTY = make_property(
    linf_ball(CENTRE_CLASS_2, eps=0.04, clip=(0.0, 1.0)),
    output_between(2, 0.0, 60.0, n_outputs=3) & argmax_is(2, n_outputs=3),
    name="tiny_output_range",
)
