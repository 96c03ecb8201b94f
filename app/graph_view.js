// The architecture graph as a Streamlit v2 component (see graph_view.py). The first graph of a page loads plotly.js's
// basic bundle (scatter traces only, a quarter of the full bundle Streamlit's plotly chart loads); every later figure
// for the same element is drawn in place with Plotly.react, so an edit never mounts a new chart. When the bundle does
// not load, the "unavailable" trigger tells the page, which then draws the graph with st.plotly_chart.
// data: {figure: the figure's JSON, src: the bundle's URL, config: plotly's config, alt: the graph in words}.

function loadPlotly(src) {
  // One download per page, shared by every graph; window.Plotly is what the bundle defines.
  if (!window.spinescopePlotly) {
    window.spinescopePlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      const failed = (why) => {
        window.spinescopePlotly = null; // the next graph tries again
        script.remove();
        reject(new Error(`${src} ${why}`));
      };
      // A truncated bundle still fires onload (its syntax error is reported apart), but defines no Plotly.
      script.onload = () => (window.Plotly && window.Plotly.react ? resolve(window.Plotly) : failed("defines no Plotly"));
      script.onerror = () => failed("could not be loaded");
      document.head.appendChild(script);
    });
  }
  return window.spinescopePlotly;
}

function clickedBlock(event) {
  // Only the node trace carries customdata (the block id, first when it is a list).
  const point = event.points.find((p) => p.customdata !== undefined && p.customdata !== null);
  if (!point) return null;
  return Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
}

export default function ({ data, parentElement, setTriggerValue }) {
  const figure = JSON.parse(data.figure);
  let graph = parentElement.querySelector(".spinescope-graph");
  if (!graph) {
    graph = document.createElement("div");
    graph.className = "spinescope-graph";
    graph.setAttribute("role", "figure");
    parentElement.appendChild(graph);
  }
  graph.setAttribute("aria-label", data.alt);
  graph.style.minHeight = `${figure.layout.height}px`; // the page keeps its layout while plotly loads
  graph.spinescopeTrigger = setTriggerValue;
  // Draws run one after another; a figure that arrives during a draw replaces any that waited.
  graph.spinescopeNext = figure;
  graph.spinescopeDrawing = (graph.spinescopeDrawing || Promise.resolve()).then(() =>
    loadPlotly(data.src).then((Plotly) => {
      const next = graph.spinescopeNext;
      if (!next) return null;
      graph.spinescopeNext = null;
      return Plotly.react(graph, next.data, next.layout, data.config).then(() => {
        if (graph.spinescopeBound) return;
        graph.spinescopeBound = true;
        graph.on("plotly_click", (event) => {
          const block = clickedBlock(event);
          if (block !== null) graph.spinescopeTrigger("clicked", block);
        });
        graph.spinescopeResize = new ResizeObserver(() => Plotly.Plots.resize(graph));
        graph.spinescopeResize.observe(graph);
      });
    }).catch((error) => {
      graph.textContent = `The graph could not be drawn: ${error.message}`;
      graph.spinescopeTrigger("unavailable", error.message); // the page draws it with st.plotly_chart instead
    }));
  return () => {
    if (graph.spinescopeResize) graph.spinescopeResize.disconnect();
    graph.spinescopeBound = false;
    if (window.Plotly) window.Plotly.purge(graph);
  };
}
