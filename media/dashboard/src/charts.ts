// The charts: uPlot (MIT), made for streaming time series. Each chart is rebuilt only when
// its series change (a worker came or went); otherwise it takes the new data in place.
import uPlot from 'uplot';

export function cssColor(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function clock(seconds: number): string {
  const d = new Date(seconds * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

export interface SeriesSpec { label: string; color: string; scale?: string; dash?: number[] }

export class Chart {
  plot?: uPlot;
  private key = '';

  constructor(private readonly el: HTMLElement, private readonly opts: { yLabel?: string; y2Label?: string; y2Scale?: string }) {}

  update(series: SeriesSpec[], data: (number | null)[][]): void {
    const key = series.map((s) => s.label).join('\0');
    const width = Math.max(300, this.el.clientWidth || 420);
    if (!this.plot || key !== this.key) {
      this.plot?.destroy();
      this.key = key;
      const axisColor = cssColor('--muted', '#9d9d9d');
      const gridColor = cssColor('--border', '#3c3c3c');
      const axes: uPlot.Axis[] = [
        // Clock time only: the date row uPlot adds would crowd a chart of the last minutes.
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, space: 80, values: (_u, splits) => splits.map(clock) },
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, label: this.opts.yLabel, size: 50 },
      ];
      // At least the last minute on the x axis, so a fresh server's few samples do not fill the chart.
      const scales: uPlot.Scales = { x: { time: true, range: (_u, min, max) => [Math.min(min, max - 60), max] }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } };
      if (this.opts.y2Scale) {
        axes.push({ scale: this.opts.y2Scale, side: 1, stroke: axisColor, grid: { show: false }, label: this.opts.y2Label, size: 50 });
        scales[this.opts.y2Scale] = { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] };
      }
      this.plot = new uPlot(
        {
          width,
          height: 180,
          scales,
          axes,
          legend: { live: true },
          cursor: { drag: { x: false, y: false } },
          series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, scale: s.scale ?? 'y', dash: s.dash, spanGaps: false, points: { show: false } }))],
        },
        data as uPlot.AlignedData,
        this.el,
      );
      return;
    }
    if (Math.abs(this.plot.width - width) > 4) this.plot.setSize({ width, height: 180 });
    this.plot.setData(data as uPlot.AlignedData);
  }
}

const PALETTE = ['--blue', '--green', '--yellow', '--orange', '--purple', '--red'];
const FALLBACK = ['#3794ff', '#89d185', '#cca700', '#d18616', '#b180d7', '#f14c4c'];
export function paletteColor(i: number): string {
  return cssColor(PALETTE[i % PALETTE.length], FALLBACK[i % FALLBACK.length]);
}
