"""rnnlab: a reproducible DVC lab comparing RNN, LSTM, GRU and an MLP on sequence prediction."""

from rnnlab import cpu

cpu.pin()  # before numpy, scipy or torch load anywhere in this process: import rnnlab first

__version__ = "0.1.0"
