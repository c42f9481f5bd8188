"""Synthetic data: invented, realistic notices from and about the member states, deterministic
by seed. No real person's data: names come from faker's locale lists, numbers from the seeded
random source.

>>> from puente.synth import Generator
>>> gen = Generator(seed=1)
>>> notice = gen.case_notice(origin="MX")
>>> name, record = gen.scenario("asylum-seeker-detention")
"""

from puente.synth.generator import Generator
from puente.synth.notice import Notice
from puente.synth.scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "Generator", "Notice", "Scenario"]
