import { describe, expect, test } from "bun:test";
import { formatInline, formatTimeline, Timeline, Trace } from "../../src/util/trace.ts";

describe("trace", () => {
  test("a timeline interleaves the CLI's points with the executor's by time, with offsets and gaps", () => {
    const timeline = new Timeline();
    timeline.mark("main", 1000.5);
    timeline.mark("created event", 1030);
    timeline.add("executor", [
      { phase: "request received", at: 1002 },
      { phase: "create", at: 1025.25 },
    ]);
    expect(formatTimeline(1000, timeline.points)).toBe(
      [
        "beaker trace: ms since the CLI started, +ms since the line before",
        "     0.5     +0.5  cli      main",
        "     2.0     +1.5  executor request received",
        "    25.3    +23.3  executor create",
        "    30.0     +4.8  cli      created event",
        "",
      ].join("\n"),
    );
  });

  test("points the executor sends again (with a later message) are kept once", () => {
    const timeline = new Timeline();
    const first = [{ phase: "create", at: 5 }];
    timeline.add("executor", first);
    timeline.add("executor", [...first, { phase: "start", at: 9 }]);
    expect(timeline.points.map((p) => p.phase)).toEqual(["create", "start"]);
  });

  test("the executor's log line is relative to the request's first point", () => {
    const trace = new Trace();
    trace.mark("request received", 100);
    trace.mark("claim", 100.4);
    trace.mark("create", 118);
    expect(formatInline(trace.points)).toBe("request received +0.0, claim +0.4, create +18.0");
    expect(formatInline(trace.points.slice(1), 100)).toBe("claim +0.4, create +18.0");
  });

  test("marks without a time take the clock, in order", () => {
    const trace = new Trace();
    trace.mark("a");
    trace.mark("b");
    expect(trace.points[1]!.at).toBeGreaterThanOrEqual(trace.points[0]!.at);
    expect(Math.abs(trace.points[0]!.at - Date.now())).toBeLessThan(1000);
  });
});
