/*
 * VGG16 Atlas compare view (the page compare/): units side by side, the selection in the URL.
 *
 *   compare/?u=block5_conv3/24,block4_conv2/14,predictions/20
 *
 * Reads vgg16/compare.json, which generator/site.py writes from the unit records
 * (SiteRenderer.compare_json): {layers: {name: filters}, classes: [dir name by index],
 *   units: {"<layer>/<index>": {w, h, r: [objective, specificity, robustness, flat],
 *   s: [size, steps, seed], image?, label?, pixel?}}}
 * A unit not drawn yet is shown as a placeholder linking to its page. No server is involved.
 */
(function () {
  "use strict"
  var root = document.getElementById("atlas-compare")
  if (!root)
    return
  var CLASS_LAYER = "predictions"
  var base = root.getAttribute("data-root")
  var items = root.querySelector(".atlas-compare__items")
  var message = root.querySelector(".atlas-compare__message")
  var input = root.querySelector("#atlas-compare-input")
  var data = null
  var selection = []

  /** "block4_conv2 #17", "block4_conv2/17", "class 20" -> "block4_conv2/17", "predictions/20"; null if no unit. */
  function parseUnit(text) {
    var match = /^\s*(block[1-5]_conv[1-3]|predictions|class)\s*[\/#\s]\s*#?\s*(\d+)\s*$/i.exec(text)
    if (!match)
      return null
    var layer = match[1].toLowerCase() === "class" ? CLASS_LAYER : match[1].toLowerCase()
    var index = parseInt(match[2], 10)
    var count = layer === CLASS_LAYER ? data.classes.length : data.layers[layer]
    return count !== undefined && index < count ? layer + "/" + index : null
  }

  function readSelection() {
    var value = new URLSearchParams(location.search).get("u") || ""
    var keys = [], unknown = []
    value.split(",").filter(Boolean).forEach(function (part) {
      var key = parseUnit(part)
      if (key === null)
        unknown.push(part)
      else if (keys.indexOf(key) < 0)
        keys.push(key)
    })
    return { keys: keys, unknown: unknown }
  }

  function writeSelection() {
    var url = new URL(location.href)
    if (selection.length)
      url.search = "?u=" + selection.join(",")
    else
      url.search = ""
    history.replaceState(null, "", url)
  }

  function pageUrl(key) {
    var parts = key.split("/")
    if (parts[0] === CLASS_LAYER)
      return "vgg16/classes/" + data.classes[+parts[1]] + "/"
    return "vgg16/" + parts[0] + "/" + parts[1] + "/"
  }

  function label(key) {
    var parts = key.split("/"), unit = data.units[key]
    if (unit && unit.label)
      return unit.label
    if (parts[0] === CLASS_LAYER)
      return "class " + parts[1] + " " + data.classes[+parts[1]].replace(/^\d+-/, "").replace(/-/g, " ")
    return parts[0] + " #" + parts[1]
  }

  function element(tag, className, text) {
    var node = document.createElement(tag)
    if (className)
      node.className = className
    if (text !== undefined)
      node.textContent = text
    return node
  }

  function number(value) {
    if (value === null || value === undefined)
      return "-"
    if (typeof value === "boolean")
      return value ? "yes" : "no"
    return typeof value === "number" ? String(+value.toPrecision(4)) : String(value)
  }

  function card(key) {
    var unit = data.units[key]
    var name = label(key)
    var figure = element("figure", "atlas-compare__item" + (unit && unit.pixel ? " atlas-pixelated" : ""))
    figure.setAttribute("data-unit", key)
    var link = element("a")
    link.href = base + pageUrl(key)
    if (unit) {
      var image = element("img")
      image.src = base + pageUrl(key) + (unit.image || "image.webp")
      image.width = unit.w
      image.height = unit.h
      image.alt = "Input that maximizes " + name
      link.append(image)
    } else {
      link.append(element("span", "atlas-placeholder atlas-compare__placeholder", "not drawn yet"))
    }
    var caption = element("figcaption")
    var title = element("a", null, name)
    title.href = base + pageUrl(key)
    caption.append(title)
    if (unit) {
      var table = element("table")
      var rows = [["Objective", unit.r[0]], ["Specificity margin", unit.r[1]], ["Robustness", unit.r[2]],
                  ["Flat", unit.r[3]], ["Size", unit.w + "\u00d7" + unit.h + " px"], ["Steps", unit.s[1]],
                  ["Seed", unit.s[2]]]
      rows.forEach(function (row) {
        var tr = element("tr")
        tr.append(element("th", null, row[0]), element("td", null, number(row[1])))
        table.append(tr)
      })
      caption.append(table)
    }
    var remove = element("button", "md-button atlas-compare__remove", "Remove")
    remove.type = "button"
    remove.setAttribute("aria-label", "Remove " + name)
    remove.addEventListener("click", function () {
      selection = selection.filter(function (other) { return other !== key })
      writeSelection()
      show()
    })
    caption.append(remove)
    figure.append(link, caption)
    return figure
  }

  function show(unknown) {
    items.replaceChildren.apply(items, selection.map(card))
    var notes = []
    if (unknown && unknown.length)
      notes.push("Not a VGG16 unit: " + unknown.join(", ") + ".")
    if (!selection.length)
      notes.push("Nothing selected yet: add a unit above.")
    message.textContent = notes.join(" ")
  }

  root.querySelector("form").addEventListener("submit", function (event) {
    event.preventDefault()
    var key = parseUnit(input.value)
    if (key === null) {
      show([input.value])
      return
    }
    if (selection.indexOf(key) < 0)
      selection.push(key)
    input.value = ""
    writeSelection()
    show()
  })
  root.querySelector(".atlas-compare__clear").addEventListener("click", function () {
    selection = []
    writeSelection()
    show()
  })

  fetch(root.getAttribute("data-units"))
    .then(function (response) {
      if (!response.ok)
        throw new Error("HTTP " + response.status)
      return response.json()
    })
    .then(function (json) {
      data = json
      var read = readSelection()
      selection = read.keys
      show(read.unknown)
      root.setAttribute("data-ready", "true")
    })
    .catch(function (error) {
      message.textContent = "The unit data could not be loaded (" + error.message + ")."
    })
})()
