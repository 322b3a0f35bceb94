import { instance, type Viz } from '@viz-js/viz';
import { createMachine } from 'xstate';
import { beforeAll, describe, expect, it } from 'vitest';
import { MACHINES } from '../../machines/build.machine.js';
import { drawMachine, eventLabel, formatDuration, type StateNodeJson } from '../../src/api/inspector/page.js';

/** Every (source, target, event) of a definition, straight from `toJSON()`, targets as state names. */
function transitionsOf(def: StateNodeJson): { from: string; to: string; event: string }[] {
  const out: { from: string; to: string; event: string }[] = [];
  const name = (id: string) => id.replace(/^#/, '').replace(new RegExp(`^${def.id}\\.`), '');
  const walk = (node: StateNodeJson) => {
    for (const child of Object.values(node.states ?? {})) {
      for (const t of child.transitions ?? []) for (const target of t.target ?? []) out.push({ from: name(child.id), to: name(target), event: t.eventType });
      walk(child);
    }
  };
  walk(def);
  return out;
}

function statesOf(def: StateNodeJson): string[] {
  const out: string[] = [];
  const walk = (node: StateNodeJson) => {
    for (const child of Object.values(node.states ?? {})) {
      out.push(child.id.replace(`${def.id}.`, ''));
      walk(child);
    }
  };
  walk(def);
  return out;
}

/** The definition as the page gets it from `…/:id/machine`: `toJSON()` through JSON (in memory its targets are StateNode objects). */
const wire = (machine: { toJSON(): unknown }) => JSON.parse(JSON.stringify(machine.toJSON())) as StateNodeJson;

const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#45;/g, '-').replace(/&amp;/g, '&');

let viz: Viz;
beforeAll(async () => {
  viz = await instance();
});

describe('drawing a build machine as DOT', () => {
  for (const kind of ['base', 'target', 'provider'] as const) {
    it(`draws every state and every transition of the ${kind} machine, with its event`, () => {
      const def = wire(MACHINES[kind]);
      const drawing = drawMachine(def);
      const states = statesOf(def);
      const transitions = transitionsOf(def);
      expect(states.length).toBeGreaterThanOrEqual(9);
      expect(transitions.length).toBeGreaterThanOrEqual(15);

      // Every state: once in the model, once as a node of the DOT text.
      expect(drawing.states.map((s) => s.name).sort()).toEqual([...states].sort());
      for (const s of drawing.states) expect(drawing.dot, s.name).toMatch(new RegExp(`^  "${s.name}" \\[id="${s.domId}", label="${s.name}"`, 'm'));
      expect(drawing.initial).toBe(kind === 'base' ? 'queued' : kind === 'target' ? 'waiting_for_base' : 'waiting_for_target');
      for (const final of ['complete', 'failed', 'cancelled']) expect(drawing.states.find((s) => s.name === final)?.final, final).toBe(true);

      // Every transition: on the edge between its states, its event on the label.
      for (const t of transitions) {
        const edge = drawing.edges.find((e) => e.from === t.from && e.to === t.to);
        expect(edge, `${t.from} -> ${t.to}`).toBeDefined();
        expect(edge!.events, `${t.from} -> ${t.to}`).toContain(t.event);
        // A guarded transition (a step's cache hit) is drawn with its guard: `done: step [cacheHit]`.
        expect(edge!.labels.some((l) => l === eventLabel(t.event) || l.startsWith(`${eventLabel(t.event)} [`)), `${t.from} -> ${t.to}: ${edge!.labels}`).toBe(true);
        const line = drawing.dot.split('\n').find((l) => l.startsWith(`  "${t.from}" -> "${t.to}" [id="${edge!.domId}"`));
        expect(line, `${t.from} -> ${t.to}`).toBeDefined();
        expect(line).toContain(eventLabel(t.event));
        expect(line).toContain(t.event);
      }
      // …and no edge that the machine does not have.
      expect(drawing.edges.reduce((n, e) => n + e.events.length, 0)).toBe(transitions.length);
    });

    it(`lays the ${kind} machine out with Graphviz: every state and event name is in the SVG`, () => {
      const def = wire(MACHINES[kind]);
      const drawing = drawMachine(def);
      const svg = decode(viz.renderString(drawing.dot, { format: 'svg' }));
      for (const s of drawing.states) {
        expect(svg, s.name).toContain(`<g id="${s.domId}" class="node${s.status ? ` st-${s.status.toLowerCase()}` : ''}">`);
        expect(svg, s.name).toContain(`<title>${s.name}</title>`);
      }
      for (const e of drawing.edges) {
        expect(svg, e.domId).toContain(`<g id="${e.domId}" class="edge">`);
        for (const label of e.labels) expect(svg, label).toContain(`>${label}</text>`);
      }
    });
  }

  it('draws nested states as clusters, enters them at their initial state, and writes guards and delays', () => {
    const machine = createMachine({
      id: 'toy',
      initial: 'idle',
      states: {
        idle: { on: { GO: { target: 'work', guard: 'ready' }, 'weird "name"': 'done' } },
        work: {
          initial: 'fetch',
          states: {
            fetch: { after: { 500: 'parse' } },
            parse: { on: { PARSED: '#toy.done' } },
          },
          on: { STOP: 'idle' },
        },
        done: { type: 'final' },
      },
    });
    const def = wire(machine);
    const drawing = drawMachine(def);
    expect(drawing.states.map((s) => s.name)).toEqual(['idle', 'work', 'work.fetch', 'work.parse', 'done']);
    expect(drawing.states.find((s) => s.name === 'work')!.compound).toBe(true);
    expect(drawing.dot).toContain('subgraph "cluster_work" {');
    const edge = (from: string, to: string) => drawing.edges.find((e) => e.from === from && e.to === to);
    expect(edge('idle', 'work.fetch')!.labels).toEqual(['GO [ready]']);
    expect(edge('idle', 'done')!.labels).toEqual(['weird "name"']);
    expect(edge('work.fetch', 'work.parse')!.labels).toEqual(['after 500 ms']);
    expect(edge('work.parse', 'done')!.labels).toEqual(['PARSED']);
    // From a compound state: drawn from its cluster's edge.
    expect(edge('work.fetch', 'idle')!.labels).toEqual(['STOP']);
    const line = (from: string, to: string) => drawing.dot.split('\n').find((l) => l.startsWith(`  "${from}" -> "${to}" [`)) ?? '';
    expect(line('work.fetch', 'idle')).toContain('ltail="cluster_work"');
    expect(line('idle', 'work.fetch')).toContain('lhead="cluster_work"');
    expect(drawing.dot).toContain('label="weird \\"name\\""');
    // Graphviz takes it.
    const svg = decode(viz.renderString(drawing.dot, { format: 'svg' }));
    for (const label of ['GO [ready]', 'after 500 ms', 'PARSED', 'STOP', 'weird "name"']) expect(svg, label).toContain(label);
  });

  it('shortens XState’s own event names and leaves the others as sent', () => {
    expect(eventLabel('ADMIT')).toBe('ADMIT');
    expect(eventLabel('xstate.done.actor.step')).toBe('done: step');
    expect(eventLabel('xstate.error.actor.compensate')).toBe('error: compensate');
    expect(eventLabel('xstate.after.1000.toy.a')).toBe('after 1000 ms');
    expect(eventLabel('xstate.after.slow.toy.a')).toBe('after slow');
    expect(eventLabel('')).toBe('always');
    expect(eventLabel('*')).toBe('any event');
  });

  it('writes durations for people', () => {
    expect(formatDuration(32)).toBe('32 ms');
    expect(formatDuration(2210)).toBe('2.2 s');
    expect(formatDuration(65_000)).toBe('1 min 05 s');
    expect(formatDuration(3_720_000)).toBe('1 h 02 min');
    expect(formatDuration(-1)).toBe('');
  });
});
