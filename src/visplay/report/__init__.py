"""The run report, ``RUN/report.html``, and the iterations table it shares with the terminal.

- :mod:`~visplay.report.page`: the page's sections, :func:`render_report` and :func:`write_report`;
- :mod:`~visplay.report.data`: reading the run folder (plain data, lenient where the page must still render);
- :mod:`~visplay.report.html`: escaping of untrusted model text, thumbnails, tables;
- :mod:`~visplay.report.plots`: the training curves and per-family accuracy plots;
- :mod:`~visplay.report.iteration_table`: the table's columns, one definition for the terminal and the page.
"""

from visplay.report.page import iteration_rows, render_report, write_report

__all__ = ["iteration_rows", "render_report", "write_report"]
