"""The parts of an .xlsx besides its sheets' cells: styles, charts and their drawings, the
relationship parts, and the XML escaping every part shares."""
from __future__ import annotations

import re
from xml.sax.saxutils import escape

from .xlsx_theme import ACCENTS

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
NS_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument"
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")


def xml_text(text: str) -> str:
    """Escape for XML; characters XML cannot hold become OOXML's _xHHHH_ escapes."""
    def sub(m):
        s = m.group(0)
        return "_x005F_" + s[1:] if s.startswith("_x") else f"_x{ord(s):04X}_"
    return escape(_ILLEGAL.sub(sub, text))


def attr_text(text: str) -> str:
    """Escape for an XML attribute value (double-quoted)."""
    return xml_text(text).replace('"', "&quot;")


class Styles:
    """cellXfs built from templates/styles.json: one style index per cell kind."""

    def __init__(self, styles: dict):
        self.kinds = list(styles["kinds"])
        self.index = {k: i + 1 for i, k in enumerate(self.kinds)}  # 0 is the default style
        self.spec = styles["kinds"]
        self.variants: dict[tuple[str, str], int] = {}  # (kind, number format) -> index

    def with_format(self, kind: str, number_format: str | None) -> int:
        """The style index of ``kind`` with its number format replaced (a block's own format,
        xlsx_numbers.block_format); None: the kind's own.  Variants are appended after every
        kind's style, so no kind's index moves."""
        if number_format is None or kind not in self.index:
            return self.index.get(kind, 0)
        key = (kind, number_format)
        if key not in self.variants:
            self.variants[key] = len(self.kinds) + 1 + len(self.variants)
        return self.variants[key]

    def xml(self, shade: str | None = None) -> str:
        """styles.xml; ``shade`` (RRGGBB): one differential style (dxf 0), the fill of a cell a
        cellIs rule marks (a plain rule: Gnumeric ignores colour scales)."""
        fonts, fills, borders, xfs = [], [], [], []
        fmt_ids: dict[str, int] = {}
        # a variant's fixed format leaves its own gap: right-aligned (the points line up), no
        # indent (it would narrow the room)
        looks = [self.spec[k] for k in self.kinds] + [
            {**self.spec[k], "number_format": f, "align": "right", "indent": 0}
            for k, f in self.variants]
        for s in looks:
            color = f'<color rgb="FF{s["color"]}"/>' if "color" in s else ""
            fonts.append(f'<font>{"<b/>" if s.get("bold") else ""}{"<i/>" if s.get("italic") else ""}'
                         f'{"<u/>" if s.get("underline") else ""}'
                         f'<sz val="{s.get("size", 11)}"/>{color}<name val="Calibri"/></font>')
            fills.append(f'<fill><patternFill patternType="solid"><fgColor rgb="FF{s["fill"]}"/>'
                         '</patternFill></fill>' if "fill" in s else '<fill><patternFill/></fill>')
            side = (f'<{{0}} style="thin"><color rgb="FF{s["border"]}"/></{{0}}>'
                    if "border" in s else "<{0}/>")
            borders.append("<border>" + "".join(side.format(e) for e in
                                                 ("left", "right", "top", "bottom")) + "</border>")
            fmt = s.get("number_format")
            fmt_id = 0
            if fmt and fmt != "General":  # General is built in (id 0)
                fmt_id = fmt_ids.setdefault(fmt, 164 + len(fmt_ids))
            n = len(fonts)  # font/fill/border k+1 (index 0 and, for fills, 1 are the defaults)
            # an indent keeps a blank beside the number: General then rounds to the width left
            indent = f' indent="{s["indent"]}"' if s.get("indent") else ""
            align = (f' applyAlignment="1"><alignment horizontal="{s["align"]}"{indent}/></xf>'
                     if "align" in s else "/>")
            xfs.append(f'<xf numFmtId="{fmt_id}" fontId="{n}" fillId="{n + 1}" borderId="{n}" '
                       'applyNumberFormat="1" applyFont="1" applyFill="1" applyBorder="1"' + align)
        numfmts = "".join(f'<numFmt numFmtId="{i}" formatCode="{attr_text(f)}"/>'
                          for f, i in fmt_ids.items())
        return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet {NS}>'
                f'<numFmts count="{len(fmt_ids)}">{numfmts}</numFmts>'
                f'<fonts count="{len(fonts) + 1}"><font><sz val="11"/><name val="Calibri"/></font>'
                f'{"".join(fonts)}</fonts>'
                f'<fills count="{len(fills) + 2}"><fill><patternFill/></fill>'
                f'<fill><patternFill patternType="gray125"/></fill>{"".join(fills)}</fills>'
                f'<borders count="{len(borders) + 1}"><border><left/><right/><top/><bottom/>'
                f'</border>{"".join(borders)}</borders>'
                '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
                f'</cellStyleXfs><cellXfs count="{len(xfs) + 1}">'
                f'<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>{"".join(xfs)}</cellXfs>'
                '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
                '</cellStyles>' + (f'<dxfs count="1"><dxf><fill><patternFill patternType="solid">'
                                   f'<bgColor rgb="FF{shade}"/></patternFill></fill></dxf></dxfs>'
                                   if shade else "") + '</styleSheet>')


def chart_xml(chart) -> str:
    """A scatter chart with straight lines (kind "scatter") or a column chart (kind "bar")."""
    series = []
    for k, (name, ref) in enumerate(chart.series):
        if chart.kind == "scatter":
            data = (f'<c:marker><c:symbol val="none"/></c:marker><c:xVal><c:numRef><c:f>'
                    f'{xml_text(chart.x)}</c:f></c:numRef></c:xVal><c:yVal><c:numRef><c:f>'
                    f'{xml_text(ref)}</c:f></c:numRef></c:yVal><c:smooth val="0"/>')
        else:
            data = (f'<c:cat><c:strRef><c:f>{xml_text(chart.x)}</c:f></c:strRef></c:cat>'
                    f'<c:val><c:numRef><c:f>{xml_text(ref)}</c:f></c:numRef></c:val>')
        series.append(f'<c:ser><c:idx val="{k}"/><c:order val="{k}"/><c:tx><c:v>'
                      f'{xml_text(name)}</c:v></c:tx>{_series_look(chart.kind, k)}{data}</c:ser>')
    if chart.kind == "scatter":
        plot = ('<c:scatterChart><c:scatterStyle val="lineMarker"/><c:varyColors val="0"/>'
                + "".join(series) + '<c:axId val="1"/><c:axId val="2"/></c:scatterChart>'
                + _axis("valAx", 1, 2, "b", chart.x_title) + _axis("valAx", 2, 1, "l", ""))
    else:
        plot = ('<c:barChart><c:barDir val="col"/><c:grouping val="clustered"/>'
                '<c:varyColors val="0"/>' + "".join(series)
                + '<c:axId val="1"/><c:axId val="2"/></c:barChart>'
                + _axis("catAx", 1, 2, "b", chart.x_title) + _axis("valAx", 2, 1, "l", ""))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
            'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
            f'{NS_R}><c:chart><c:title><c:tx><c:rich><a:bodyPr/><a:p><a:r><a:t>'
            f'{xml_text(chart.title)}</a:t></a:r></a:p></c:rich></c:tx><c:overlay val="0"/>'
            f'</c:title><c:autoTitleDeleted val="0"/><c:plotArea><c:layout/>{plot}</c:plotArea>'
            '<c:legend><c:legendPos val="r"/><c:overlay val="0"/></c:legend>'
            '<c:plotVisOnly val="1"/></c:chart></c:chartSpace>')


def _series_look(kind: str, k: int) -> str:
    # series k in the theme's accent k, written out: a reader that ignores the theme (or a file
    # without one) would otherwise pick colours of its own, or none
    colour = f'<a:solidFill><a:srgbClr val="{ACCENTS[k % len(ACCENTS)]}"/></a:solidFill>'
    return (f'<c:spPr><a:ln w="28575">{colour}</a:ln></c:spPr>' if kind == "scatter"
            else f"<c:spPr>{colour}</c:spPr>")


def _axis(tag: str, ax: int, cross: int, pos: str, title: str) -> str:
    t = (f'<c:title><c:tx><c:rich><a:bodyPr/><a:p><a:r><a:t>{xml_text(title)}</a:t></a:r></a:p>'
         '</c:rich></c:tx><c:overlay val="0"/></c:title>') if title else ""
    return (f'<c:{tag}><c:axId val="{ax}"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
            f'<c:delete val="0"/><c:axPos val="{pos}"/>{t}<c:majorGridlines/>'
            f'<c:crossAx val="{cross}"/></c:{tag}>')


def drawing_xml(charts) -> str:
    anchors = []
    for k, chart in enumerate(charts):
        r, c = chart.anchor
        anchors.append(
            f'<xdr:twoCellAnchor><xdr:from><xdr:col>{c}</xdr:col><xdr:colOff>0</xdr:colOff>'
            f'<xdr:row>{r}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from><xdr:to>'
            f'<xdr:col>{c + 8}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{r + 18}</xdr:row>'
            '<xdr:rowOff>0</xdr:rowOff></xdr:to><xdr:graphicFrame macro="">'
            f'<xdr:nvGraphicFramePr><xdr:cNvPr id="{k + 2}" name="Chart {k + 1}"/>'
            '<xdr:cNvGraphicFramePr/></xdr:nvGraphicFramePr><xdr:xfrm><a:off x="0" y="0"/>'
            '<a:ext cx="0" cy="0"/></xdr:xfrm><a:graphic><a:graphicData '
            'uri="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:chart '
            'xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
            f'r:id="rId{k + 1}"/></a:graphicData></a:graphic></xdr:graphicFrame>'
            '<xdr:clientData/></xdr:twoCellAnchor>')
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xdr:wsDr '
            'xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" '
            f'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" {NS_R}>'
            + "".join(anchors) + "</xdr:wsDr>")


def rels_xml(targets: list[tuple[str, str]]) -> str:
    body = "".join(f'<Relationship Id="rId{k + 1}" Type="{REL}/{t}" Target="{target}"/>'
                   for k, (t, target) in enumerate(targets))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
            f'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{body}'
            "</Relationships>")
