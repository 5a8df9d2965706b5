"""The workbook's theme part (xl/theme/theme1.xml): colours, fonts and line styles.

Without a theme part LibreOffice draws every chart blank (axes and legend, but no lines, bars or
gridlines: the series have no colours to draw with); Excel and openpyxl always write one.  This is
Office 2007's default theme, cut to what the standard requires.
"""
from __future__ import annotations

# accent1..accent6: chart series k is drawn in ACCENTS[k % 6] (xlsx_parts._series_look)
ACCENTS = ("4F81BD", "C0504D", "9BBB59", "8064A2", "4BACC6", "F79646")

_A = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
_PH = '<a:solidFill><a:schemeClr val="phClr"/></a:solidFill>'


def theme_xml() -> str:
    """The theme part's XML."""
    accents = "".join(f'<a:accent{k + 1}><a:srgbClr val="{c}"/></a:accent{k + 1}>'
                      for k, c in enumerate(ACCENTS))
    colours = ('<a:clrScheme name="Office"><a:dk1><a:sysClr val="windowText" lastClr="000000"/>'
               '</a:dk1><a:lt1><a:sysClr val="window" lastClr="FFFFFF"/></a:lt1>'
               '<a:dk2><a:srgbClr val="1F497D"/></a:dk2><a:lt2><a:srgbClr val="EEECE1"/></a:lt2>'
               f'{accents}<a:hlink><a:srgbClr val="0000FF"/></a:hlink>'
               '<a:folHlink><a:srgbClr val="800080"/></a:folHlink></a:clrScheme>')
    fonts = ('<a:fontScheme name="Office">' + "".join(
        f'<a:{kind}Font><a:latin typeface="{face}"/><a:ea typeface=""/><a:cs typeface=""/>'
        f'</a:{kind}Font>' for kind, face in (("major", "Cambria"), ("minor", "Calibri")))
        + "</a:fontScheme>")
    lines = "".join(f'<a:ln w="{w}" cap="flat" cmpd="sng" algn="ctr">{_PH}'
                    '<a:prstDash val="solid"/></a:ln>' for w in (9525, 25400, 38100))
    formats = (f'<a:fmtScheme name="Office"><a:fillStyleLst>{_PH * 3}</a:fillStyleLst>'
               f'<a:lnStyleLst>{lines}</a:lnStyleLst><a:effectStyleLst>'
               + '<a:effectStyle><a:effectLst/></a:effectStyle>' * 3
               + f'</a:effectStyleLst><a:bgFillStyleLst>{_PH * 3}</a:bgFillStyleLst>'
               '</a:fmtScheme>')
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<a:theme {_A} name="Office Theme"><a:themeElements>{colours}{fonts}{formats}'
            '</a:themeElements><a:objectDefaults/><a:extraClrSchemeLst/></a:theme>')
