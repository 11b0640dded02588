// Charts, drawn with uPlot (vendored; a week of one-minute points is 10,080 per series).

import uPlot from '../vendor/uplot/uPlot.esm.js';

const COLORS = {
  produced: '#1a7f37',
  consumed: '#b35900',
  estimated: '#6f42c1',
  late: '#0969da',
  missing: '#cf222e',
  price: '#0969da',
  supply: '#1a7f37',
  demand: '#b35900',
};

function width(element) {
  return Math.max(320, element.clientWidth || 800);
}

/** Keeps a chart as wide as its container. */
function follow(element, plot) {
  const observer = new ResizeObserver(() => plot.setSize({ width: width(element), height: plot.height }));
  observer.observe(element);
  return () => {
    observer.disconnect();
    plot.destroy();
  };
}

/**
 * Production and consumption per interval, gross, with estimated, late and missing intervals
 * marked. `data` = [times (s), produced kWh, consumed kWh, estimated, late, missing], nulls
 * where there is nothing.
 */
export function energyChart(element, data, { title, unit = 'kWh', bars = false }) {
  const marker = (color) => ({ show: true, size: 5, stroke: color, fill: color });
  const paths = bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
  const options = {
    title,
    width: width(element),
    height: 300,
    scales: { x: { time: true } },
    axes: [{}, { label: unit, size: 60 }],
    series: [
      {},
      { label: 'produced', stroke: COLORS.produced, width: 1.5, paths, fill: bars ? `${COLORS.produced}88` : undefined },
      { label: 'consumed', stroke: COLORS.consumed, width: 1.5, paths, fill: bars ? `${COLORS.consumed}88` : undefined },
      { label: 'estimated', stroke: COLORS.estimated, width: 0, points: marker(COLORS.estimated), paths: () => null },
      { label: 'late', stroke: COLORS.late, width: 0, points: marker(COLORS.late), paths: () => null },
      { label: 'missing', stroke: COLORS.missing, width: 0, points: marker(COLORS.missing), paths: () => null },
    ],
  };
  const plot = new uPlot(options, data, element);
  return follow(element, plot);
}

/** Clearing prices per slot: [times (s), price]. */
export function priceChart(element, data) {
  const plot = new uPlot({
    title: 'Clearing price per slot',
    width: width(element),
    height: 220,
    scales: { x: { time: true } },
    axes: [{}, { label: 'tokens/kWh', size: 60 }],
    series: [{}, { label: 'price', stroke: COLORS.price, width: 2, points: { show: true, size: 4 } }],
  }, data, element);
  return follow(element, plot);
}

/**
 * A slot's supply and demand curves: cumulative kWh (x) against price (y), as steps, with the
 * clearing point. `supply` and `demand` are [[kWh, price], …] corners; `point` is [kWh, price]
 * or null.
 */
export function bookChart(element, supply, demand, point) {
  const xs = [...new Set([0, ...supply.map((p) => p[0]), ...demand.map((p) => p[0]), ...(point ? [point[0]] : [])])].sort((a, b) => a - b);
  const at = (curve) => xs.map((x) => {
    const step = curve.find(([until]) => x <= until + 1e-9);
    return step ? step[1] : null;
  });
  const clearing = xs.map((x) => (point && Math.abs(x - point[0]) < 1e-9 ? point[1] : null));
  const plot = new uPlot({
    title: 'Supply and demand',
    width: width(element),
    height: 260,
    scales: { x: { time: false } },
    axes: [{ label: 'kWh (cumulative)' }, { label: 'tokens/kWh', size: 60 }],
    series: [
      { label: 'kWh' },
      { label: 'supply (asks)', stroke: COLORS.supply, width: 2, paths: uPlot.paths.stepped({ align: -1 }) },
      { label: 'demand (bids)', stroke: COLORS.demand, width: 2, paths: uPlot.paths.stepped({ align: -1 }) },
      { label: 'clearing point', stroke: '#000', width: 0, points: { show: true, size: 10, stroke: '#000', fill: '#ffd33d' }, paths: () => null },
    ],
  }, [xs, at(supply), at(demand), clearing], element);
  return follow(element, plot);
}

export { uPlot };
