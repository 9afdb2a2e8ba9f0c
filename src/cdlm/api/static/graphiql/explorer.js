// Starts GraphiQL on the page cdlm serves at GET /graphql (src/cdlm/api/graphiql.py).
// The page's policy runs no inline script, so this file does what one would have done.
"use strict";
(function () {
  // Style elements GraphiQL's dialogs add must carry the page's nonce; they read it here.
  window.__webpack_nonce__ = document.currentScript.nonce;
  var root = document.getElementById("graphiql");
  var endpoint = window.location.href.split(/[?#]/)[0];
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: endpoint }),
      defaultQuery: root.dataset.defaultQuery,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      // The API key pasted into Headers is never written to storage.
      shouldPersistHeaders: false,
      // Queries, tabs and history last as long as the browser tab.
      storage: window.sessionStorage,
    })
  );
})();
