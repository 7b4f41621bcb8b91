"""The spectral heart-rate student's DSP front end against numpy's FFT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.students.spectral import SpectralHRConfig, SpectralHRStudent, dft_matrix
from edgefm.errors import ConfigError


def test_dft_rows_give_the_hann_windowed_spectrum():
    c = SpectralHRConfig(in_channels=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=c.window)
    z = dft_matrix(c) @ x
    F = len(c.bins_bpm)
    power = z[:F] ** 2 + z[F:] ** 2
    # independent: the DTFT of the Hann-windowed signal at the bin frequencies
    t = np.arange(c.window) / c.fs_hz
    w = np.hanning(c.window)
    ref = np.abs(np.exp(-2j * np.pi * (c.bins_bpm / 60)[:, None] * t[None, :]) @ (w * x)) ** 2 * (2 / w.sum()) ** 2
    np.testing.assert_allclose(power, ref, rtol=1e-9)


@pytest.mark.parametrize("bpm", [42.0, 90.0, 200.0])
def test_front_end_peaks_at_the_pulse(bpm):
    c = SpectralHRConfig(in_channels=2)
    m = SpectralHRStudent(c).eval()
    t = np.arange(c.window) / c.fs_hz
    x = np.stack([np.sin(2 * np.pi * bpm / 60 * t), np.sin(2 * np.pi * 2.5 * t)])[None].astype(np.float32)
    with torch.no_grad():
        s = m.spectra(torch.from_numpy(x)).numpy()[0]
    assert c.bins_bpm[s[0].argmax()] == pytest.approx(bpm, abs=c.step_bpm)
    assert c.bins_bpm[s[1].argmax()] == pytest.approx(150.0, abs=c.step_bpm)
    assert abs(s.mean(-1)).max() < 1e-4          # demeaned over bins


def test_student_shapes_counts_and_config():
    m = SpectralHRStudent(SpectralHRConfig(in_channels=5))
    F = len(m.config.bins_bpm)
    assert F == 101 and m.config.bins_bpm[0] == 30 and m.config.bins_bpm[-1] == 230
    assert m(torch.zeros(3, 5, 256)).shape == (3, F)
    assert m.keep_float == ("frontend", "cnn.0", "cnn.9")
    # MACs: the DFT C*T*2F plus the convs F * sum(c_in*c_out*k) (+ 1x1 scoring)
    c = m.config
    conv = F * (5 * 16 * 7 + 16 * 16 * 7 * 2 + 16)
    assert m.macs() >= 5 * 256 * 2 * F + conv
    assert m.num_params() < 100_000 and m.macs() < 5_000_000
    b = SpectralHRStudent(SpectralHRConfig(in_channels=3, output="bpm"))
    assert b(torch.zeros(2, 3, 256)).shape == (2, 1)
    with pytest.raises(ConfigError, match="Nyquist"):
        SpectralHRConfig(fs_hz=4.0)
    with pytest.raises(ConfigError, match="odd"):
        SpectralHRConfig(kernel=4)
