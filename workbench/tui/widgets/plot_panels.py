"""A plot panel: draws one ``PlotData`` with plotext at the widget's size."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from workbench.core.views.plots import PlotData

#: plotext colours for successive series (recovery first, straight-shot second)
COLORS = ("cyan", "orange", "green", "magenta", "blue", "red")


class PlotPanel(PlotextPlot):
    """Shows one plot; ``show`` replaces what is drawn, resizing redraws by itself."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: PlotData | None = None

    def show(self, data: PlotData) -> None:
        self.data = data
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(data.title + (f"  ({data.note})" if data.note else ""))
        plt.xlabel(data.x_label)
        plt.ylabel(data.y_label)
        if data.chart == "line":
            for i, s in enumerate(data.series):
                plt.plot(list(data.x), list(s.values), label=s.name, color=COLORS[i % len(COLORS)])
        elif len(data.series) > 1:
            # plotext 5.3.2 takes ``labels`` / a colour list; textual-plotext's stub lags behind
            plt.multiple_bar(  # type: ignore[call-arg]
                list(data.labels),
                [list(s.values) for s in data.series],
                labels=[s.name for s in data.series],
                color=[COLORS[i % len(COLORS)] for i in range(len(data.series))],  # type: ignore[arg-type]
            )
        elif data.series:
            s = data.series[0]
            plt.bar(list(data.labels), list(s.values), color=COLORS[0], label=s.name)
        self._draw_intervals(data)
        if data.counts and data.series:  # plotext would tick 0, 1.2, 2.3, ... on its own
            ticks = data.count_ticks()
            plt.yticks(ticks, [str(t) for t in ticks])  # type: ignore[arg-type]
            plt.ylim(0, ticks[-1])
        self.refresh()

    def _draw_intervals(self, data: PlotData) -> None:
        """Wilson intervals as error bars at each category (bars of rates only)."""
        plt = self.plt
        n_series = len(data.series)
        for i, s in enumerate(data.series):
            if not s.low or not s.high or data.chart != "bars":
                continue
            # multiple_bar puts series i of category j near x = j + 1 (+ an offset per series)
            offset = (i - (n_series - 1) / 2) * (0.8 / max(n_series, 1)) if n_series > 1 else 0.0
            for j, (lo, hi) in enumerate(zip(s.low, s.high, strict=True)):
                x = j + 1 + offset
                plt.plot([x, x], [lo, hi], marker="│", color="gray")
        if any(s.low for s in data.series):
            plt.ylim(0, 1)
