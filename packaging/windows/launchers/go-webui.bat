@echo off
rem GPT-SoVITS Studio: start the launcher in the language of your Windows and open it in the web browser.
rem Every path is taken from this file's folder, so the folder may live anywhere (spaces, Chinese characters).
setlocal
chcp 65001 >nul
pushd "%~dp0"
set "PATH=%~dp0runtime;%PATH%"
"%~dp0runtime\python.exe" -X utf8 "%~dp0webui.py" --open-browser %*
set "STUDIO_EXIT=%ERRORLEVEL%"
popd
if not "%STUDIO_EXIT%"=="0" pause
endlocal & exit /b %STUDIO_EXIT%
