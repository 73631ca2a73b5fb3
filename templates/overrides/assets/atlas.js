/*
 * VGG16 Atlas lightbox: a link with class "atlas-zoom" around an image opens the linked image
 * enlarged in an overlay; a click, Escape or the close button dismisses it and returns focus.
 * Without JavaScript the link simply opens the image.
 */
(function () {
  "use strict"
  var overlay = null
  var opener = null

  function close() {
    if (!overlay)
      return
    overlay.remove()
    overlay = null
    document.removeEventListener("keydown", onKey)
    if (opener)
      opener.focus()
  }

  function onKey(event) {
    if (event.key === "Escape")
      close()
  }

  function open(link) {
    var thumbnail = link.querySelector("img")
    opener = link
    overlay = document.createElement("div")
    overlay.className = "atlas-lightbox"
    overlay.setAttribute("role", "dialog")
    overlay.setAttribute("aria-modal", "true")
    overlay.setAttribute("aria-label", thumbnail ? thumbnail.alt : "Enlarged image")
    var image = document.createElement("img")
    image.src = link.href
    image.alt = thumbnail ? thumbnail.alt : ""
    // Enlarge as the page shows it: tiny images keep their hard pixel edges instead of a blur.
    if (thumbnail && getComputedStyle(thumbnail).imageRendering === "pixelated")
      image.className = "atlas-lightbox__pixelated"
    var button = document.createElement("button")
    button.type = "button"
    button.className = "atlas-lightbox__close"
    button.setAttribute("aria-label", "Close")
    button.textContent = "\u00d7"
    overlay.append(image, button)
    overlay.addEventListener("click", close)
    document.addEventListener("keydown", onKey)
    document.body.append(overlay)
    button.focus()
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.atlas-zoom")
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)
      return
    event.preventDefault()
    open(link)
  })
})()
